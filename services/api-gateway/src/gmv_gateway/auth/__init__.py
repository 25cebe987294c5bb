"""Users, login sessions, CSRF, personal API tokens and login throttling."""
