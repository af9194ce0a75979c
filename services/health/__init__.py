"""Health: medical, mental health and sexual and reproductive health; engagement shared, detail sealed."""
