"""The IVR engine: webhooks, signature check, settings, TwiML helpers, REST client."""
