"""opnc.Secret: never shows its value in any text rendering, cannot be compared with == or pickled."""

from __future__ import annotations

import copy
import logging
import pickle

import pytest

import opnc

VALUE = "s3cr3t"


def test_repr_and_str_are_redacted() -> None:
    secret = opnc.Secret(VALUE)
    assert repr(secret) == "Secret('[redacted]')"
    assert str(secret) == "[redacted]"
    assert f"{secret}" == "[redacted]"
    assert f"{secret!r}" == "Secret('[redacted]')"
    assert "%s" % secret == "[redacted]"  # noqa: UP031 - the %-operator is what is tested
    assert "{:>20}".format(secret) == "[redacted]"
    for text in (repr(secret), str(secret), repr([secret]), repr({"password": secret}), str(ValueError(secret))):
        assert VALUE not in text


def test_logging_a_secret_shows_redacted(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("opnc.test").info("token is %s", opnc.Secret(VALUE))
    assert caplog.records[0].getMessage() == "token is [redacted]"
    assert VALUE not in caplog.text


def test_expose_len_and_bool() -> None:
    secret = opnc.Secret(VALUE)
    assert secret.expose() == VALUE
    assert len(secret) == 6
    assert bool(secret) is True
    assert bool(opnc.Secret("")) is False


def test_equals_compares_values() -> None:
    secret = opnc.Secret(VALUE)
    assert secret.equals(opnc.Secret(VALUE)) is True
    assert secret.equals(VALUE) is True
    assert secret.equals("s3cr3T") is False
    assert secret.equals(opnc.Secret(VALUE + "x")) is False


def test_no_equality_operator() -> None:
    secret = opnc.Secret(VALUE)
    with pytest.raises(TypeError, match="equals"):
        _ = secret == opnc.Secret(VALUE)
    with pytest.raises(TypeError, match="equals"):
        _ = secret != VALUE


def test_not_picklable_nor_copyable_into_another_process() -> None:
    secret = opnc.Secret(VALUE)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)
    with pytest.raises(TypeError, match="cannot be pickled"):
        copy.deepcopy(secret)


def test_wrong_types_are_refused_without_echoing_the_value() -> None:
    with pytest.raises(TypeError, match=r"Secret\(\) takes a str") as caught:
        opnc.Secret(b"hunter2")  # type: ignore[arg-type]
    assert "hunter2" not in str(caught.value)
    with pytest.raises(TypeError, match="takes a Secret or a str") as caught:
        opnc.Secret(VALUE).equals(b"hunter2")  # type: ignore[arg-type]
    assert "hunter2" not in str(caught.value)
