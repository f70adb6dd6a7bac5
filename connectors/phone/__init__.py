"""Phone connectors: Twilio Programmable Voice webhooks and status callbacks (`twilio-voice`), Amazon Connect
contact trace records (`amazon-connect`), and PBX call detail record files from Asterisk and FreeSWITCH
(`cdr-csv`)."""
