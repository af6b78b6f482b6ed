"""Helpers the test folders share: apps in each mode and their data (`service`), real service
processes (`processes`), and the live service the generated clients drive (`live`)."""
