"""Legal aid: clinic caseload and intake, matters with milestones, hearings and outcomes."""
