"""The Streamlit command center's library side: the background runtime, queries, theme."""
