"""Payments of a booking's share: the gateway client, payment records and their state machine, and
reconciliation of what the gateway left unanswered. Booking calls this subpackage; it never calls back."""
