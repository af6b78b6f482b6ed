from store_monitor.cli import app

app()
