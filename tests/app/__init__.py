"""Tests of the Streamlit command center: page logic (AppTest) and the real app in a browser."""
