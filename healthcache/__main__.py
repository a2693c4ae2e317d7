from healthcache.cli import run

run()
