"""The `ivr serve` runtime: one process answering phone lines on one loaded bot, with the agents' console mounted
beside them. It sits above the transports (the lines) and the console (a web app it starts); neither imports it."""
