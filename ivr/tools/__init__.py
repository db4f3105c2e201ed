"""Tooling around the product: scripted callers (`ivr simulate`), caller voices and the benchmarks
(`ivr bench …`). It uses the product (bot, transports, stores); nothing in the product imports it."""
