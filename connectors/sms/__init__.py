"""Text-message connectors: Twilio Messaging (SMS, MMS and WhatsApp through Twilio) and the Vonage SMS API."""
