"""The plan: a show compiled into what is sent to Scope and when. Pure: no I/O, no clock."""
