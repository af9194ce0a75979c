"""Referrals: the closed loop, the service directory, deadlines, escalation and re-routing."""
