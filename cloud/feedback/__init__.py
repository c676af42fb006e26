"""People's feedback as text: key fields extracted (``extract``), safety rules and a classifier
for category, fault, severity and departments (``classify``), its labelled corpus
(``labelled``, ``corpus/``) and its held-out evaluation (``evaluate``). Pure: no database, no
API; the ticketing layer will take its classifications."""
