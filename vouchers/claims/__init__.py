"""Redemption claims: a platform or an enterprise claims the vouchers spent on its bookings, with
documents (PDF, XLSX) and attachments; the bureau approves and pays them."""
