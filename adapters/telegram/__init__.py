"""The Telegram adapter: aiogram 3's Bot API client in, engine events; engine actions out.

convert   an aiogram Update -> an engine Event (or a policy reply, or nothing)
channel   engine actions -> Bot API calls, within Telegram's limits, surviving its refusals
feed      accepted updates -> the engine: once each, in order per chat, bounded in flight
polling   getUpdates, long polling, never dying on a network error
webhook   an aiohttp server that takes Telegram's POSTs, checking the secret header
serve     `flowgram run`: everything above, started and stopped gracefully
"""
