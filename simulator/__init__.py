"""Try the system without a Twilio account: a REST API stand-in and a terminal phone."""
