"""The API contract: the committed OpenAPI document, a client generated from it, and the app
checked against it by generated requests."""
