"""Campaigns over a Ray cluster (``moefuzz run --ray``): one actor per GPU hosts a campaign's
workers, the driver keeps the one corpus.

Nothing here imports Ray at module level; only :func:`moefuzz.cluster.driver.run_ray_campaign`
does, when a campaign asks for a cluster. :mod:`moefuzz.cluster.data` says what travels between
the driver and the actors (plain data: arrays and JSON-able metadata), :mod:`moefuzz.cluster.actor`
is what runs in an actor, :mod:`moefuzz.cluster.driver` is the driver's loop.
"""
