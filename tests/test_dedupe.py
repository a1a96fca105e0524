"""The request hash that resends join by: stored with every task, so it must not change between versions."""

from reelgate.tasks.dedupe import request_hash

KEY, MODEL = "key_01k8sxz17gewz8kac074xz4crh", "sora-2-hd-15s-chat"
#: SHA-256 of {"key", "model", "messages"} as JSON, sorted keys, non-ASCII kept (what every version stored).
STORED = "278e4de26ef67570531f6b10b5177d9479446cfd3045b20e1ea7282d56503ad7"


def test_a_resend_hashes_as_tasks_stored_by_earlier_versions() -> None:
    messages = [{"role": "user", "content": "中国街头吃西瓜, 生成视频比例9:16"}]
    assert request_hash(KEY, MODEL, messages) == STORED


def test_whitespace_and_unknown_fields_do_not_count_the_key_and_model_do() -> None:
    resent = [{"role": "user", "content": "  中国街头吃西瓜,\n 生成视频比例9:16 ", "name": "me"}]
    assert request_hash(KEY, MODEL, resent) == STORED
    assert request_hash(KEY, "sora-2-hd-10s-chat", resent) != STORED
    assert request_hash("key_other", MODEL, resent) != STORED
