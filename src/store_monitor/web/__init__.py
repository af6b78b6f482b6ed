"""What the API and the dashboard share: app assembly, the one authenticator, security headers,
the request's state and session, the error shape."""
