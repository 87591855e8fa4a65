"""The dry-run report of a compiled plan: text (text.py), JSON (data.py) and a self-contained
HTML page (html.py, with the timeline picture from svg.py); common.py holds what they share.
"""
