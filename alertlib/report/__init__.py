"""Reporting, from results tables only: statistics over seeds, the study's claims and headline, figures."""
