-- Signature shares are kept in memory only: after a restart a replica recomputes its own and
-- asks its peers again (they answer with their shares or the finished signature), so storing
-- every share cost one write per share message for nothing a restart needs.
DROP TABLE signature_shares;
