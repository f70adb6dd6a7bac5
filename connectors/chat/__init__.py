"""Chat connectors: unify's own chat JSON (`chat`), Intercom, Zendesk Sunshine Conversations and Chatwoot.

Every chat message is one interaction: `external_id` is the platform's message id, `thread_key` the platform's
conversation id (namespaced, `intercom:215467`), customer messages are inbound and agent or bot messages outbound.
A user id that the business's logged-in app set on the chat (Intercom `user_id` / contact `external_id`, Sunshine
`externalId`, a Chatwoot `identifier` proven by identity validation) becomes an `account` identifier at
`authenticated`; an anonymous visitor becomes a `chat` handle (`chat_handle(platform, visitor id)`) at `unverified`.
The shared building blocks (decoding views, building the event) live in `connectors.chat.native`."""
