"""The booking calendar: booking rules and availability, bookings and their life (including the
orchestration of their payments), the waitlist, calendar administration and iCalendar feeds."""
