"""ReaScript actions shipped as package data; ``debleed reaper install`` copies them into
REAPER's ``Scripts/debleed`` folder. Each script is standard library + ``RPR_*`` only and
hands over to ``reaper_bridge.actions`` through ``debleed_boot``."""
