"""Talks to llamactl's OpenAI-compatible endpoint with the official `openai` client.

Usage: openai_client.py BASE_URL API_KEY MODEL
Prints one line per check and exits non-zero on the first failure.
"""
import sys

import openai

base, key, model = sys.argv[1:4]
client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=120)

models = [m.id for m in client.models.list().data]
assert model in models, f"{model} not in {models}"
print("models ok:", models)

chat = client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": "Hello"}], max_tokens=8, temperature=0
)
assert chat.choices[0].message.content is not None
assert chat.choices[0].finish_reason in ("length", "stop")
print("chat ok:", repr(chat.choices[0].message.content))

chunks = list(
    client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hello"}], max_tokens=6, stream=True
    )
)
assert len(chunks) >= 2, chunks
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
print(f"stream ok: {len(chunks)} chunks, {text!r}")

completion = client.completions.create(model=model, prompt="hello world", max_tokens=4)
assert completion.choices[0].text is not None
print("completion ok:", repr(completion.choices[0].text))

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
except openai.NotFoundError as error:
    print("unknown model ok:", error.status_code)
else:
    raise AssertionError("an unknown model was accepted")

bad = openai.OpenAI(base_url=f"{base}/v1", api_key="llamactl-" + "0" * 64, max_retries=0)
try:
    bad.models.list()
except openai.AuthenticationError as error:
    print("wrong key ok:", error.status_code)
else:
    raise AssertionError("a wrong key was accepted")
