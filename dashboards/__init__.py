"""The Streamlit app: reads what the pipeline wrote to the warehouse, never a cloud or a model."""
