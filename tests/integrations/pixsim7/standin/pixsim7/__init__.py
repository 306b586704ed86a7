"""A stand-in for the pieces of pixsim7 (GitHub Sakenfor/pixsim7 at 3d20eed89) that the npc-video plugin touches,
written from pixsim7's code: same module paths, names, signatures, enum values and calling order, without its
database, web app or other providers. Each module says which file it stands in for and what it leaves out. The
operator trial in docs/integrations/pixsim7.md runs the plugin in pixsim7's real modules."""
