"""Token ids and logprobs survive the packing the analytics keep them in, exactly (ids) and to float32 (logprobs)."""

import struct

from lightwire.services.collector.packed_tokens import pack_ids, pack_logprobs, unpack_call


def test_a_calls_completions_come_back_as_written():
    ids, logprobs = [0, 1, 49151, 2**31 - 1], [-0.0, -1.5, -10.8517, -1e-7]
    row = {"call_id": "r/1@a", "completion_token_ids_packed": [pack_ids(ids), pack_ids([])],
           "completion_logprobs_packed": [pack_logprobs(logprobs), pack_logprobs([])]}
    call = unpack_call(row)
    assert call == {"call_id": "r/1@a", "completion_token_ids": [ids, []],
                    "completion_logprobs": [[struct.unpack("f", struct.pack("f", x))[0] for x in logprobs], []]}


def test_a_row_without_tokens_has_empty_lists():
    assert unpack_call({"call_id": "c"}) == {"call_id": "c", "completion_token_ids": [], "completion_logprobs": []}
