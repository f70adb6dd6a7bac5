"""Email connectors: raw RFC 5322 messages (`email-mime`, what an MTA pipe or an S3 drop delivers) and the inbound
webhooks of Mailgun, Postmark and SendGrid. All of them end in `_message.to_event`, so threading, charsets,
snippets, auto-reply and bounce detection and SPF/DKIM trust work the same whatever platform delivered the mail."""
