# Kequip: `make run` sets everything up and serves; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
STRIPE_PORT ?= 8420
MAIL_PORT ?= 8025
export STRIPE_API_BASE ?= http://127.0.0.1:$(STRIPE_PORT)
export FLASK_APP := core.app:create_app
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run dev test bench migrate demo payments mail translations babel-extract babel-update babel-compile clean

$(VENV)/.app: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.test: $(VENV)/.app requirements-test.txt
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

babel-compile: $(VENV)/.app
	$(BIN)/pybabel compile --statistics -d translations

babel-extract: $(VENV)/.app
	$(BIN)/pybabel extract --no-location --sort-output -F babel.cfg -k _l -k lazy_gettext -o translations/messages.pot --ignore-dirs='.* _* tests instance' .

babel-update: babel-extract
	$(BIN)/pybabel update --no-fuzzy-matching -i translations/messages.pot -d translations -l zh_CN

translations: babel-update babel-compile

migrate: $(VENV)/.app
	mkdir -p instance
	$(BIN)/flask db upgrade

demo: migrate
	$(BIN)/flask demo load

# localstripe on 127.0.0.1 only, its state in instance/ (marketplace/payments/localstripe_server.py)
payments: $(VENV)/.app
	@mkdir -p instance
	@if ! (echo > /dev/tcp/127.0.0.1/$(STRIPE_PORT)) 2>/dev/null; then \
	  nohup $(BIN)/python -m marketplace.payments.localstripe_server --port $(STRIPE_PORT) \
	    --state-file instance/localstripe.pickle > instance/localstripe.log 2>&1 & \
	  echo "payment server (localstripe) on http://127.0.0.1:$(STRIPE_PORT)"; fi

# A mail catcher on 127.0.0.1 only: nothing leaves the machine; messages land in instance/mail, read on /dev/mail
mail: $(VENV)/.app
	@mkdir -p instance/mail/tmp instance/mail/new instance/mail/cur  # a Maildir: aiosmtpd only makes one that does not exist yet
	@if ! (echo > /dev/tcp/127.0.0.1/$(MAIL_PORT)) 2>/dev/null; then \
	  nohup $(BIN)/python -m aiosmtpd -n -l 127.0.0.1:$(MAIL_PORT) -c aiosmtpd.handlers.Mailbox instance/mail \
	    > instance/mail.log 2>&1 & \
	  echo "mail catcher on 127.0.0.1:$(MAIL_PORT); read the mail at http://127.0.0.1:$(PORT)/dev/mail"; fi

run: babel-compile demo payments mail
	@echo "Kequip serves on http://127.0.0.1:$(PORT)  (demo password: kequip-demo)"
	DEV_MAILDIR=instance/mail MAIL_PORT=$(MAIL_PORT) PORT=$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py 'core.app:create_app()'

dev: babel-compile demo payments mail
	DEV_MAILDIR=instance/mail MAIL_PORT=$(MAIL_PORT) $(BIN)/flask run --debug --port $(PORT)

test: $(VENV)/.test babel-compile
	$(BIN)/ruff check .
	$(BIN)/pytest

bench: $(VENV)/.test babel-compile
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) instance tests/artifacts .pytest_cache
