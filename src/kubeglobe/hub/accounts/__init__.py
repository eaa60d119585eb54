"""Local accounts: passwords, the lockout rule, sessions and API tokens of platform users."""
