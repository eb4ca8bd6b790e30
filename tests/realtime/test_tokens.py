"""Subscription tokens: scoped to their topics, expiring, and signed with a secret derived from the
server's secret key (another deployment's tokens, or a forged one, are refused)."""
from __future__ import annotations

import time

import jwt
import pytest
from django.test import override_settings

from realtime.messages import STREAM_TOPIC, Topic
from realtime.tokens import ISSUER, InvalidToken, mint_run_stream_token, mint_token, token_secret, verify_token


def test_a_token_grants_exactly_the_topics_it_was_minted_for() -> None:
    topics = [Topic("user:1", "progress"), Topic("user:1", "done")]
    grant = verify_token(mint_token(topics))
    assert grant.topics == tuple(topics)
    assert not grant.may_publish
    assert grant.expires_at == pytest.approx(time.time() + 60, abs=3)


def test_a_durable_endpoint_run_token_reads_the_runs_stream_for_sixteen_minutes() -> None:
    grant = verify_token(mint_run_stream_token("01RUN"))
    assert grant.topics == (Topic("01RUN", STREAM_TOPIC),)
    assert grant.expires_at == pytest.approx(time.time() + 16 * 60, abs=3)


def test_an_expired_token_is_refused() -> None:
    token = mint_token([Topic("c", "t")], expires_in=-5)
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(token)


def test_a_token_from_a_server_with_another_secret_key_is_refused() -> None:
    with override_settings(SECRET_KEY="another-deployment-" + "x" * 40):
        foreign = mint_token([Topic("c", "t")])
    with pytest.raises(InvalidToken, match="Signature"):
        verify_token(foreign)


def test_the_secret_is_derived_from_the_secret_key_not_fixed() -> None:
    first = token_secret()
    with override_settings(SECRET_KEY="another-deployment-" + "x" * 40):
        assert token_secret() != first


def test_a_token_with_its_topics_edited_is_refused() -> None:
    claims = jwt.decode(mint_token([Topic("mine", "t")]), options={"verify_signature": False})
    claims["topics"] = [{"kind": "run", "channel": "someone-elses", "name": "t"}]
    forged = jwt.encode(claims, "a-guessed-secret-that-is-long-enough-for-hs256", algorithm="HS256")
    with pytest.raises(InvalidToken):
        verify_token(forged)


def test_an_unsigned_token_is_refused() -> None:
    claims = {"iss": ISSUER, "iat": int(time.time()), "exp": int(time.time()) + 60, "jti": "x",
              "topics": [{"channel": "c", "name": "t"}], "publish": True}
    with pytest.raises(InvalidToken):
        verify_token(jwt.encode(claims, None, algorithm="none"))


def test_the_publish_right_is_only_in_tokens_minted_with_it() -> None:
    assert verify_token(mint_token([Topic("c", "t")], may_publish=True)).may_publish
