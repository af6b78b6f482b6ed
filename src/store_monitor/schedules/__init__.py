"""Reports on a schedule: the cron rules (`cron`, pure), schedules as rows (`rows`: create,
list, read, delete) and their firing by the periodic sweep (`firing`)."""
