"""Email delivery: the SMTP sender and the loop that drains the SQL outbox into it."""
