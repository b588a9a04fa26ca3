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


# ATH §7: the specification's error table, verbatim. Other implementations and SDKs branch on
# these statuses, so a drift here breaks interoperability.
SPEC_TABLE = {
    "INVALID_ATTESTATION": 401,
    "AGENT_NOT_REGISTERED": 403,
    "AGENT_UNAPPROVED": 403,
    "PROVIDER_NOT_APPROVED": 403,
    "SCOPE_NOT_APPROVED": 403,
    "SESSION_NOT_FOUND": 400,
    "SESSION_EXPIRED": 400,
    "STATE_MISMATCH": 400,
    "TOKEN_INVALID": 401,
    "TOKEN_EXPIRED": 401,
    "TOKEN_REVOKED": 401,
    "AGENT_IDENTITY_MISMATCH": 403,
    "PROVIDER_MISMATCH": 403,
    "USER_DENIED": 403,
    "OAUTH_ERROR": 502,
    "INTERNAL_ERROR": 500,
}


def test_statuses_follow_the_specification_table() -> None:
    assert {code: ErrorCode(code).http_status for code in SPEC_TABLE} == SPEC_TABLE
    assert ATHError("SESSION_NOT_FOUND", "gone").status == 400
