from mmrec.cli import main

raise SystemExit(main())
