"""Pure call-flow builders: call facts in, ``VoiceResponse`` out."""
