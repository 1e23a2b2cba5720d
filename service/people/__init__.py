"""What we hold on people: consent, unsubscribing, records, owners, housekeeping."""
