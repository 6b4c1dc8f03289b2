"""Running an installation for weeks: `doctor` (is this machine ready?), logs and health
lines, opening hours. Never imports `live` (the live app uses these, not the reverse)."""
