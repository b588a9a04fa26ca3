from athkit.protocol import ATHError, ErrorCode


def test_every_code_has_a_status() -> None:
    for code in ErrorCode:
        assert 400 <= code.http_status <= 504


def test_error_renders_spec_body() -> None:
    err = ATHError(ErrorCode.SCOPE_NOT_APPROVED, "no", details={"scope": "mail:send"})
    assert err.status == 403
    assert err.to_dict() == {
        "code": "SCOPE_NOT_APPROVED",
        "message": "no",
        "details": {"scope": "mail:send"},
    }
