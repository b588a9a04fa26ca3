"""User passwords: the memory-hard scrypt hashing shared with the console (``athkit.protocol``)."""

from athkit.protocol._passwords import check_password_hash_format, hash_password, verify_password

__all__ = ["check_password_hash_format", "hash_password", "verify_password"]
