"""Telephony providers: the interface the engine uses, a simulated network, and (later) Twilio."""
