"""``ctwa certify``: the spec's partner acceptance criteria and integration test, run against
a BSP's real endpoint, with an evidence bundle a partner can send to CleverTap."""
