"""Batch scoring on Apache Spark for `predict -P engine=spark` (scoring); pyspark is imported only here."""
