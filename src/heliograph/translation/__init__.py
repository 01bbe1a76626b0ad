"""Translation between the OpenAI chat-completion shape (the unified gateway's) and each
provider's own API: requests, responses, streams event by event, and errors. Pure: no I/O."""
