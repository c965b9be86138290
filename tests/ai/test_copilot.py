"""The chat front end's helpers: streamed pieces, suggested prompts, and a model status without secrets."""

from __future__ import annotations

from qlrf.ai.copilot import STARTER_PROMPTS, answer_chunks, model_status, suggested_prompts


def test_answer_chunks_rebuild_the_answer_exactly():
    text = "Offline router (no model): drift agent.\n- Data of 2026-11-20.\n\n- Drift in syd1  prod: 813 VMs."
    pieces = list(answer_chunks(text))
    assert "".join(pieces) == text
    assert len(pieces) > text.count("\n") + 1  # word-sized, not one block


def test_suggested_prompts_put_the_day_first_without_repeats():
    day = ["patch the revoked images in syd1 prod", "Patch the revoked images in  syd1 prod", "schedule a dr drill for fra1 prod"]
    prompts = suggested_prompts(day, limit=4)
    assert prompts == ["patch the revoked images in syd1 prod", "schedule a dr drill for fra1 prod", *STARTER_PROMPTS[:2]]
    assert suggested_prompts([], limit=10) == list(STARTER_PROMPTS)


def test_model_status_names_provider_and_model_never_the_key():
    assert model_status({}) == "offline router (no model configured)"
    shown = model_status({"QLRF_LLM_BASE_URL": "http://127.0.0.1:9/v1", "QLRF_LLM_API_KEY": "sk-secret-42",
                          "QLRF_LLM_MODEL": "qwen2.5"})
    assert shown.startswith("openai_compatible: qwen2.5")
    assert "sk-secret" not in shown and "127.0.0.1" not in shown
    refused = model_status({"QLRF_LLM_BASE_URL": "http://user:hunter2@127.0.0.1:9/v1", "QLRF_LLM_MODEL": "qwen2.5"})
    assert refused.startswith("offline router (model settings invalid: QLRF_LLM_BASE_URL") and "hunter2" not in refused


def test_model_status_says_when_the_settings_are_invalid():
    shown = model_status({"QLRF_LLM_PROVIDER": "nosuch"})
    assert shown.startswith("offline router (model settings invalid: QLRF_LLM_PROVIDER='nosuch'")
