"""Employment reintegration: programs, enrolments, progress, and outcomes with 3- and 6-month retention."""
