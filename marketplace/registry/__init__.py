"""The instrument registry: platforms enter their instruments (by form or by spreadsheet import), the
bureau reviews them, photos; the full-text index of each instrument's public record (search.py)."""
